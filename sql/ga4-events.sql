-- A GA4 BigQuery export's item events, one row per item of each
-- view_item, select_item / select_promotion, add_to_cart and purchase
-- event, as `shelfrank train --events` reads them: user, item, kind,
-- timestamp (GA4's microseconds). Other events and items without an id
-- or a user are left out (`shelfrank train --ga4` counts them). Rows are
-- in the export's order (no ORDER BY): `train` sorts each user's events by
-- time and keeps the file's order for ties, as `train --ga4` does.
--
-- Standard SQL over a table or view named `events` with GA4's schema.
-- In BigQuery: replace `events` with `your-project.analytics_N.events_*`
-- and export the result as CSV (EXPORT DATA ... format = 'CSV', header =
-- true). Locally: tools/ga4-prepare.py runs it in DuckDB over a
-- newline-delimited JSON or Parquet export.
SELECT
  e.user_pseudo_id AS user,
  TRIM(item.item_id) AS item,
  CASE e.event_name
    WHEN 'view_item' THEN 'view'
    WHEN 'select_item' THEN 'click'
    WHEN 'select_promotion' THEN 'click'
    WHEN 'add_to_cart' THEN 'cart'
    WHEN 'purchase' THEN 'purchase'
  END AS kind,
  CAST(e.event_timestamp AS INT64) AS timestamp
FROM events AS e, UNNEST(e.items) AS item
WHERE e.event_name IN ('view_item', 'select_item', 'select_promotion', 'add_to_cart', 'purchase')
  AND COALESCE(e.user_pseudo_id, '') <> ''
  AND COALESCE(TRIM(item.item_id), '') <> ''
