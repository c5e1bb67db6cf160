// Installs what `npm start` and `npm test` need on a machine with only
// Rust (rustup) and Node.js 20+, and does nothing when it is already there.
// One line per step; every failure a newcomer can meet ends in one sentence
// naming the fix, never a stack trace. `.ci/run` goes through here too.
//
//   node tools/setup.mjs start   npm dependencies, the wasm32 target, wasm-bindgen-cli
//   node tools/setup.mjs test    the same, plus Chromium and Mesa's Vulkan driver (apt-get, as root) and DuckDB for Python (pip)
//
// tools/build.mjs imports `wasmBindgenCommand` from here, so the two agree
// on which wasm-bindgen runs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WASM_TARGET = 'wasm32-unknown-unknown';
const MIN_NODE = 20;

/** Ends the process with one readable sentence (and the tail of a tool's output, when that says why). */
export function fail(sentence, detail = '') {
  if (detail.trim()) console.error(detail.trim().split('\n').slice(-15).join('\n'));
  console.error(`\nshelfrank: ${sentence}`);
  process.exit(1);
}

function say(step, text) {
  console.error(`setup: ${step.padEnd(22)} ${text}`);
}

function seconds(ms) {
  const s = Math.round(ms / 1000);
  return s >= 90 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** Runs a command to completion; { ok, code, output } (output is stdout + stderr). */
function capture(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...options });
  if (r.error) return { ok: false, code: null, output: '', missing: r.error.code === 'ENOENT' };
  return { ok: r.status === 0, code: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Runs a long command, keeping only the end of its output for an error message. */
function runQuiet(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk) => {
      tail = (tail + chunk).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => resolve({ ok: false, output: String(error.message) }));
    child.on('close', (code) => resolve({ ok: code === 0, output: tail }));
  });
}

async function timed(step, note, cmd, args, env) {
  say(step, note);
  const started = Date.now();
  const result = await runQuiet(cmd, args, env);
  if (result.ok) say(step, `done in ${seconds(Date.now() - started)}`);
  return result;
}

const offline = (output) => /could not (download|resolve)|failed to (download|fetch|get)|network|timed out|dns|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|Couldn't resolve host|error sending request/i.test(output);

function checkNode() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE) {
    fail(`shelfrank needs Node.js ${MIN_NODE} or newer and this is ${process.versions.node}: install Node.js ${MIN_NODE}+ (https://nodejs.org, or \`nvm install ${MIN_NODE}\`), then run this command again.`);
  }
  say('Node.js', `${process.versions.node} (ok)`);
}

/** Where cargo installs binaries: $CARGO_HOME/bin, else ~/.cargo/bin. */
function cargoBin() {
  return path.join(process.env.CARGO_HOME || path.join(os.homedir(), '.cargo'), 'bin');
}

function checkRust() {
  const cargo = capture('cargo', ['--version']);
  if (cargo.missing) {
    if (existsSync(path.join(cargoBin(), 'cargo'))) {
      fail(`Rust is installed in ${cargoBin()} but that folder is not on PATH: run \`. "${path.dirname(cargoBin())}/env"\` (or open a new shell), then run this command again.`);
    }
    fail('Rust is not installed (no `cargo` on PATH): install it with rustup from https://rustup.rs, open a new shell, then run this command again.');
  }
  if (!cargo.ok) fail('`cargo --version` failed: repair the Rust installation (`rustup self update`, `rustup default stable`), then run this command again.', cargo.output);
  say('Rust', `${cargo.output.trim()} (ok)`);
}

/** The npm dependencies, installed from the lockfile when node_modules is missing or older than it. */
async function npmDependencies() {
  const step = 'npm dependencies';
  const lock = path.join(root, 'package-lock.json');
  const installed = path.join(root, 'node_modules/.package-lock.json');
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const wanted = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
  const fresh =
    existsSync(installed) &&
    statSync(installed).mtimeMs >= statSync(lock).mtimeMs &&
    wanted.every((name) => existsSync(path.join(root, 'node_modules', name, 'package.json')));
  if (fresh) {
    say(step, `${wanted.length} packages (ok)`);
    return;
  }
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = await timed(step, 'installing with npm ci (usually 20-60 s)...', npm, ['ci', '--no-audit', '--no-fund']);
  if (!result.ok) {
    if (offline(result.output)) fail('npm could not reach its registry to install the dependencies: connect to the network (or set npm\'s proxy with `npm config set proxy …`), then run this command again.', result.output);
    fail('`npm ci` failed (see above): fix what it reports, or delete node_modules and run this command again.', result.output);
  }
}

/** The rustup target the browser builds need. */
async function wasmTarget() {
  const step = `${WASM_TARGET}`;
  const hasTarget = () => {
    const sysroot = capture('rustc', ['--print', 'sysroot']);
    return sysroot.ok && existsSync(path.join(sysroot.output.trim(), 'lib/rustlib', WASM_TARGET, 'lib'));
  };
  if (hasTarget()) {
    say(step, 'target installed (ok)');
    return;
  }
  if (capture('rustup', ['--version']).missing) {
    fail(`the Rust toolchain has no ${WASM_TARGET} target and there is no rustup to add it: install Rust with rustup (https://rustup.rs), or add the target to this toolchain, then run this command again.`);
  }
  const result = await timed(step, 'adding the target with rustup (usually 10-30 s)...', 'rustup', ['target', 'add', WASM_TARGET]);
  if (!result.ok) {
    if (offline(result.output)) {
      fail(`rustup could not download the ${WASM_TARGET} target (no network access to static.rust-lang.org?): connect to the network and run \`rustup target add ${WASM_TARGET}\`, then run this command again.`, result.output);
    }
    fail(`\`rustup target add ${WASM_TARGET}\` failed (see above): fix what it reports, then run this command again.`, result.output);
  }
  // rustup trusts its own records: a target it lists whose files are gone is "up to date".
  if (!hasTarget()) {
    fail(`rustup lists the ${WASM_TARGET} target but its files are missing: run \`rustup target remove ${WASM_TARGET} && rustup target add ${WASM_TARGET}\`, then run this command again.`, result.output);
  }
}

/** The wasm-bindgen crate's exact version in Cargo.lock (the CLI must match it). */
export function wasmBindgenVersion() {
  const lock = readFileSync(path.join(root, 'Cargo.lock'), 'utf8');
  const found = /\[\[package\]\]\nname = "wasm-bindgen"\nversion = "([^"]+)"/.exec(lock);
  if (!found) fail('Cargo.lock names no wasm-bindgen crate: restore Cargo.lock from git, then run this command again.');
  return found[1];
}

function versionOf(command) {
  const r = capture(command, ['--version']);
  return r.ok ? r.output.trim().split(/\s+/)[1] : null;
}

/** The wasm-bindgen executable at the lockfile's version, or null: on PATH first, then in cargo's bin folder. */
export function wasmBindgenCommand(version = wasmBindgenVersion()) {
  for (const candidate of ['wasm-bindgen', path.join(cargoBin(), 'wasm-bindgen')]) {
    if (versionOf(candidate) === version) return candidate;
  }
  return null;
}

async function wasmBindgen() {
  const version = wasmBindgenVersion();
  const step = 'wasm-bindgen-cli';
  if (wasmBindgenCommand(version)) {
    say(step, `${version} (ok)`);
    return;
  }
  const other = versionOf('wasm-bindgen');
  const note = other ? `${other} is on PATH but Cargo.lock needs ${version}; ` : '';
  // No default features: they only add TLS for the test runner's downloads, and cost a minute of compiling.
  const result = await timed(step, `${note}installing ${version} with cargo into ${cargoBin()} (usually 2-5 min)...`, 'cargo', [
    'install',
    'wasm-bindgen-cli',
    '--version',
    version,
    '--no-default-features',
  ]);
  if (!result.ok) {
    if (offline(result.output)) {
      fail(`cargo could not download wasm-bindgen-cli ${version} (no access to crates.io?): connect to the network and run \`cargo install wasm-bindgen-cli --version ${version}\`, then run this command again.`, result.output);
    }
    fail(`\`cargo install wasm-bindgen-cli --version ${version}\` failed (see above): fix what it reports, then run this command again.`, result.output);
  }
  if (!wasmBindgenCommand(version)) fail(`wasm-bindgen ${version} was installed but cannot be run from ${cargoBin()}: add that folder to PATH, then run this command again.`);
}

/** What the browser tests need from the system: Chromium, and Mesa's Vulkan driver for the native WebGPU test. */
async function systemPackages() {
  const step = 'Chromium + Mesa Vulkan';
  const chromium = existsSync('/usr/bin/chromium');
  const icds = existsSync('/usr/share/vulkan/icd.d') ? readdirSync('/usr/share/vulkan/icd.d') : [];
  const mesa = icds.some((f) => f.startsWith('lvp_icd'));
  const missing = [...(chromium ? [] : ['chromium']), ...(mesa ? [] : ['mesa-vulkan-drivers'])];
  if (missing.length === 0) {
    say(step, 'installed (ok)');
    return;
  }
  const command = `apt-get install -y ${missing.join(' ')}`;
  if (capture('apt-get', ['--version']).missing) {
    fail(`the browser tests need ${missing.join(' and ')} at /usr/bin/chromium and /usr/share/vulkan/icd.d: this is not a Debian/Ubuntu machine, so install them with your package manager, then run npm test again.`);
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    fail(`the browser tests need ${missing.join(' and ')}, and installing them needs root: run \`sudo ${command}\`, then run npm test again.`);
  }
  say(step, `installing ${missing.join(', ')} with apt-get (usually 1-2 min)...`);
  const started = Date.now();
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const update = await runQuiet('apt-get', ['update', '-qq'], env);
  const install = update.ok ? await runQuiet('apt-get', ['install', '-y', '-qq', ...missing], env) : update;
  if (!install.ok) {
    if (offline(install.output)) fail(`apt-get could not reach the Debian mirrors: connect to the network, run \`${command}\`, then run npm test again.`, install.output);
    fail(`\`${command}\` failed (see above): fix what it reports, then run npm test again.`, install.output);
  }
  say(step, `done in ${seconds(Date.now() - started)}`);
}

/** DuckDB for Python: the test that runs sql/'s GA4 preparation (tools/ga4-prepare.py) needs it. */
async function duckdb() {
  const step = 'DuckDB (Python)';
  if (capture('python3', ['-c', 'import duckdb']).ok) {
    say(step, 'installed (ok)');
    return;
  }
  // Without it that one test skips (CI sets SHELFRANK_REQUIRE_DUCKDB and must have it).
  const required = Boolean(process.env.SHELFRANK_REQUIRE_DUCKDB);
  if (!capture('python3', ['-m', 'pip', '--version']).ok) {
    if (!required) {
      say(step, 'no python3 with pip here: the GA4 SQL test will skip (python3 -m pip install duckdb to run it)');
      return;
    }
    fail('the GA4 preparation test needs DuckDB for Python and there is no python3 with pip here: install Python 3 with pip, run `python3 -m pip install duckdb`, then run npm test again.');
  }
  const result = await timed(step, 'installing duckdb with pip (usually 10-30 s)...', 'python3', ['-m', 'pip', 'install', '--quiet', 'duckdb']);
  if (!result.ok && !required) {
    say(step, 'pip could not install duckdb: the GA4 SQL test will skip');
    return;
  }
  if (!result.ok) {
    if (offline(result.output)) fail('pip could not reach PyPI: connect to the network, run `python3 -m pip install duckdb`, then run npm test again.', result.output);
    fail('`python3 -m pip install duckdb` failed (see above): fix what it reports, then run npm test again.', result.output);
  }
}

export async function setup(purpose) {
  if (!['start', 'test', 'build'].includes(purpose)) fail(`unknown setup '${purpose}': use start, build or test.`);
  const started = Date.now();
  checkNode();
  checkRust();
  await npmDependencies();
  await wasmTarget();
  await wasmBindgen();
  if (purpose === 'test') {
    await systemPackages();
    await duckdb();
  }
  say('ready', `in ${seconds(Date.now() - started)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await setup(process.argv[2] ?? 'start');
}
