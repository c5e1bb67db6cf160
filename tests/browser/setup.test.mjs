// A newcomer's failures end in one sentence naming the fix, never a stack
// trace: tools/setup.mjs (what `npm start` and `npm test` run first) and
// the demo server, each run as a separate process on a machine made to
// lack something. Tools that would need the network are stood in for by
// small scripts that fail the way the real ones do offline.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { root } from './harness.mjs';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-setup-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function setup(env, nodeArgs = []) {
  const r = spawnSync(process.execPath, [...nodeArgs, path.join(root, 'tools/setup.mjs'), 'start'], {
    cwd: root,
    encoding: 'utf8',
    env: { HOME: scratch, CARGO_HOME: path.join(scratch, 'no-cargo'), ...env },
  });
  return { status: r.status, stderr: r.stderr, last: r.stderr.trim().split('\n').pop() };
}

/** One sentence, naming what to do, and no stack trace. */
function assertReadable({ status, stderr, last }, pattern) {
  assert.equal(status, 1, stderr);
  assert.match(last, /^shelfrank: [^\n]+\.$/, stderr);
  assert.match(last, pattern, stderr);
  assert.doesNotMatch(stderr, /^\s+at .+:\d+:\d+\)?$/m, 'a stack trace');
}

/** A folder of stand-in commands, each a shell script. */
function fakeBin(name, scripts) {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const [command, body] of Object.entries(scripts)) {
    writeFileSync(path.join(dir, command), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(dir, command), 0o755);
  }
  return dir;
}

test('no Rust at all: install it with rustup', () => {
  assertReadable(setup({ PATH: path.join(scratch, 'empty') }), /Rust is not installed .*https:\/\/rustup\.rs/);
});

test('Rust installed but not on PATH: source its env file', () => {
  const home = path.join(scratch, 'home-with-cargo');
  fakeBin('home-with-cargo/.cargo/bin', { cargo: 'echo "cargo 1.95.0"' });
  const result = setup({ PATH: path.join(scratch, 'empty'), HOME: home, CARGO_HOME: path.join(home, '.cargo') });
  assertReadable(result, /not on PATH: run `\. ".*\.cargo\/env"`/);
});

test('Node.js older than 20: install a newer one', () => {
  const old = 'data:text/javascript,Object.defineProperty(process, "versions", { value: { ...process.versions, node: "18.19.0" } });';
  assertReadable(setup({ PATH: process.env.PATH }, ['--import', old]), /needs Node\.js 20 or newer and this is 18\.19\.0: install Node\.js 20\+/);
});

test('no wasm32 target and no network: the rustup command to run when online', () => {
  const sysroot = path.join(scratch, 'sysroot-without-wasm');
  mkdirSync(path.join(sysroot, 'lib/rustlib/x86_64-unknown-linux-gnu/lib'), { recursive: true });
  const bin = fakeBin('offline-rust', {
    cargo: 'echo "cargo 1.95.0 (stand-in)"',
    rustc: `[ "$1" = "--print" ] && echo "${sysroot}"`,
    rustup: [
      '[ "$1" = "--version" ] && { echo "rustup 1.28.2"; exit 0; }',
      'echo "info: downloading component \'rust-std\' for \'wasm32-unknown-unknown\'" >&2',
      'echo "error: could not download file from \'https://static.rust-lang.org/dist/rust-std-wasm32-unknown-unknown.tar.xz\': error sending request" >&2',
      'exit 1',
    ].join('\n'),
  });
  const result = setup({ PATH: `${bin}:${path.dirname(process.execPath)}` });
  assertReadable(result, /rustup could not download the wasm32-unknown-unknown target .*run `rustup target add wasm32-unknown-unknown`/);
  assert.match(result.stderr, /setup: npm dependencies .*\(ok\)/, 'the steps before it ran and said so');
});

test('rustup lists the wasm32 target but its files are gone: reinstall it', () => {
  const sysroot = path.join(scratch, 'sysroot-with-stale-record');
  mkdirSync(sysroot, { recursive: true });
  const bin = fakeBin('stale-rustup', {
    cargo: 'echo "cargo 1.95.0 (stand-in)"',
    rustc: `[ "$1" = "--print" ] && echo "${sysroot}"`,
    rustup: '[ "$1" = "--version" ] && { echo "rustup 1.28.2"; exit 0; }\necho "info: component rust-std for target wasm32-unknown-unknown is up to date" >&2',
  });
  assertReadable(setup({ PATH: `${bin}:${path.dirname(process.execPath)}` }), /files are missing: run `rustup target remove wasm32-unknown-unknown && rustup target add wasm32-unknown-unknown`/);
});

test('a toolchain without rustup and without the wasm32 target: install Rust with rustup', () => {
  const sysroot = path.join(scratch, 'distro-sysroot');
  mkdirSync(sysroot, { recursive: true });
  const bin = fakeBin('distro-rust', { cargo: 'echo "cargo 1.85.0 (debian)"', rustc: `echo "${sysroot}"` });
  assertReadable(setup({ PATH: `${bin}:${path.dirname(process.execPath)}` }), /no wasm32-unknown-unknown target and there is no rustup to add it/);
});

/** Runs the demo server until it prints its URL or exits; resolves to { code, stdout, stderr }. */
function serveDemo(env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'tools/serve-demo.mjs')], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('shelfrank demo: http')) child.kill();
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function listen(port) {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test('a port in use: an explicit PORT names the fix; the default port moves to a free one', async () => {
  const taken = await listen(0);
  try {
    const { port } = taken.address();
    const explicit = await serveDemo({ PORT: String(port) });
    assert.equal(explicit.code, 1, explicit.stderr);
    const last = explicit.stderr.trim().split('\n').pop();
    assert.match(last, new RegExp(`^shelfrank: port ${port} is in use by another program: .*\`PORT=8081 npm start\`\\.$`));
    assert.doesNotMatch(explicit.stderr, /^\s+at /m);
  } finally {
    taken.close();
  }
  // The default port: taken here if it is free, so the move is what is tested.
  const blocker = await listen(8080).catch(() => null);
  try {
    const moved = await serveDemo({ PORT: '' });
    assert.match(moved.stderr, /port 8080 is in use by another program; serving on a free port instead/);
    const url = /shelfrank demo: (http:\/\/127\.0\.0\.1:(\d+)\/www\/demo\/)/.exec(moved.stdout);
    assert.ok(url && url[2] !== '8080', moved.stdout);
  } finally {
    blocker?.close();
  }
});
