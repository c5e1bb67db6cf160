#!/usr/bin/env python3
"""Prepares a GA4 BigQuery export for `shelfrank train --events --catalog`
with the SQL in sql/ (the same SQL runs in BigQuery), run locally by DuckDB
(`pip install duckdb`), which reads newline-delimited JSON and Parquet.

    python3 tools/ga4-prepare.py EXPORT OUT_DIR

EXPORT is a file or a folder of .json / .jsonl / .ndjson or .parquet files
with GA4's `events_*` schema. Writes OUT_DIR/events.csv and
OUT_DIR/catalog.csv, then: shelfrank train --events OUT_DIR/events.csv
--catalog OUT_DIR/catalog.csv --out shop/shelfrank.bin
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GA4's item fields the SQL reads: a JSON export may leave any of them out.
ITEM = ', '.join(
    f'{name} {kind}'
    for name, kind in [('item_id', 'VARCHAR'), ('item_name', 'VARCHAR'), ('item_category', 'VARCHAR'), ('item_category2', 'VARCHAR'),
                       ('item_category3', 'VARCHAR'), ('item_category4', 'VARCHAR'), ('item_category5', 'VARCHAR'),
                       ('item_brand', 'VARCHAR'), ('price', 'DOUBLE')])
JSON_COLUMNS = {'event_name': 'VARCHAR', 'event_timestamp': 'VARCHAR', 'user_pseudo_id': 'VARCHAR', 'items': f'STRUCT({ITEM})[]'}


def quote(text):
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def fail(message):
    print(f'ga4-prepare: {message}', file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) != 2 or argv[0] in ('-h', '--help'):
        fail('usage: python3 tools/ga4-prepare.py EXPORT OUT_DIR')
    export, out = argv
    try:
        import duckdb
    except ImportError:
        fail('needs DuckDB for Python: pip install duckdb')
    if os.path.isdir(export):
        files = sorted(os.path.join(export, f) for f in os.listdir(export))
    elif os.path.isfile(export):
        files = [export]
    else:
        fail(f'{export} is neither a file nor a folder')
    parquet = [f for f in files if f.endswith('.parquet')]
    json = [f for f in files if f.endswith(('.json', '.jsonl', '.ndjson'))]
    if parquet and json:
        fail(f'{export} holds both Parquet and JSON files; give one kind')
    if not parquet and not json:
        fail(f'{export} has no .parquet, .json, .jsonl or .ndjson files')
    started = time.time()
    con = duckdb.connect()
    # The export's row order carries through (sql/ga4-events.sql has no ORDER BY): ties in time keep it.
    con.execute('SET preserve_insertion_order = true')
    try:
        listed = '[' + ', '.join(quote(f) for f in (parquet or json)) + ']'
        if parquet:
            con.execute(f'CREATE VIEW events AS SELECT * FROM read_parquet({listed})')
        else:
            columns = '{' + ', '.join(f'{quote(k)}: {quote(v)}' for k, v in JSON_COLUMNS.items()) + '}'
            con.execute(f"CREATE VIEW events AS SELECT * FROM read_json({listed}, format = 'newline_delimited', columns = {columns})")
        os.makedirs(out, exist_ok=True)
        for name in ('events', 'catalog'):
            with open(os.path.join(ROOT, 'sql', f'ga4-{name}.sql'), encoding='utf-8') as f:
                sql = f.read()
            path = os.path.join(out, f'{name}.csv')
            con.execute(f"COPY ({sql}) TO {quote(path)} (HEADER, DELIMITER ',')")
            rows = con.execute(f'SELECT count(*) FROM read_csv({quote(path)}, header = true, all_varchar = true)').fetchone()[0]
            print(f'ga4-prepare: {rows} rows -> {path}')
    except duckdb.Error as e:
        fail(f'{export}: {e}')
    print(f'ga4-prepare: {len(parquet or json)} {"Parquet" if parquet else "JSON"} file(s) in {time.time() - started:.2f} s')


if __name__ == '__main__':
    main(sys.argv[1:])
