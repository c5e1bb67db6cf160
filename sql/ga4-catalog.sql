-- The catalog of a GA4 BigQuery export, from the items of its item events,
-- as `shelfrank train --catalog` reads it: id, title, category, brand,
-- price. Each field is the item's earliest non-empty value; category joins
-- item_category .. item_category5 with spaces.
--
-- Standard SQL over a table or view named `events` with GA4's schema; see
-- ga4-events.sql for running it in BigQuery or locally.
WITH item_events AS (
  SELECT
    TRIM(item.item_id) AS id,
    NULLIF(TRIM(item.item_name), '') AS title,
    NULLIF(ARRAY_TO_STRING([
      NULLIF(TRIM(item.item_category), ''), NULLIF(TRIM(item.item_category2), ''), NULLIF(TRIM(item.item_category3), ''),
      NULLIF(TRIM(item.item_category4), ''), NULLIF(TRIM(item.item_category5), '')], ' '), '') AS category,
    NULLIF(TRIM(item.item_brand), '') AS brand,
    item.price AS price,
    CAST(e.event_timestamp AS INT64) AS seen_at
  FROM events AS e, UNNEST(e.items) AS item
  WHERE e.event_name IN ('view_item', 'select_item', 'select_promotion', 'add_to_cart', 'purchase')
    AND COALESCE(TRIM(item.item_id), '') <> ''
)
SELECT DISTINCT
  id,
  FIRST_VALUE(title IGNORE NULLS) OVER whole AS title,
  FIRST_VALUE(category IGNORE NULLS) OVER whole AS category,
  FIRST_VALUE(brand IGNORE NULLS) OVER whole AS brand,
  FIRST_VALUE(price IGNORE NULLS) OVER whole AS price
FROM item_events
WINDOW whole AS (PARTITION BY id ORDER BY seen_at ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
ORDER BY id
