"""The cut-over from Airbyte: find the Parquet shape readers expect, and write in it.

Airbyte wrote the partitions that Glue tables, Athena views and Power BI models were built
on. A partition of ours next to them must have their Parquet schema, or Athena fails with
HIVE_PARTITION_SCHEMA_MISMATCH and the models lose the columns they filter on. So:

- `inspect`: per table, the newest partition radar-extract did not write; its footer only.
- `output_schema`: what was found, stored as `schemas/<db>/output/<table>.json` (reviewed).
- `rules`: per column, how a value of the exact contract becomes the found type, and
  whether that is identical, lossless, or lossy (and what is counted).
- `kernels`: the vectorized conversions (Arrow compute and numpy, never per value).
- `writer`: the converter the pipeline runs on every batch, metadata columns included.

And the way back, once a table's history is to be exact (`migrate`):
- `reverse`: per column, how the type an old partition holds becomes the contract's again, and
  whether that is identical, exact, not guaranteed, or possibly lost (what is counted).
- `decode`: its vectorized kernels (base64 back to bytes, big-endian bytes, TIME and DECIMAL
  text, ISO text back to dates and timestamps).
- `old_partition`: who wrote a partition, its columns matched to the stored schema's, each
  batch converted and every cell counted.
- `migration`: the counts, the per-table report and the table's switch to exact.
- `migrate`: the run, partition by partition, through the publish protocol.

What Airbyte writes, read in airbytehq/airbyte:
- Legacy Java S3 destination (airbyte-cdk/java/airbyte-cdk/s3-destinations/src/main/java/io/
  airbyte/cdk/integrations/destination/s3/avro/JsonToAvroSchemaConverter.java, AvroConstants.java,
  JsonSchemaType.java): each record gets `_airbyte_ab_id` (string, Avro logicalType uuid,
  required) and `_airbyte_emitted_at` (long timestamp-millis, required) first, then the stream's
  fields, all nullable, then `_airbyte_additional_properties` (nullable map<string, string>).
  JSON number -> double, integer -> long (int in early versions), boolean -> boolean; strings
  with format date / date-time / time -> date / timestamp-micros / time-micros, and such a
  logical type becomes the union [null, logical, string] ("default to a string if the value
  is invalid"), which parquet-avro writes as a group of optional `member0` (the logical type)
  and `member1` (the string). Field names go through AvroNameTransformer: characters outside
  [A-Za-z0-9_] become `_`, a leading digit gets a `_` before it.
- The 1.x bulk CDK (airbyte-cdk/bulk/toolkits/load-avro/.../AirbyteTypeToAvroSchema.kt,
  load-parquet/.../ParquetWriter.kt and ParquetMapperPipelineFactory.kt,
  bulk/core/load/.../AirbyteTypeToAirbyteTypeWithMeta.kt): `_airbyte_raw_id` (string UUID),
  `_airbyte_extracted_at` (integer: epoch milliseconds), `_airbyte_meta` (struct of `sync_id`
  long and `changes`, a list of struct {field, change, reason}), `_airbyte_generation_id`
  (long), all required, then the fields, flattened. Date -> int32 date, timestamps with or
  without zone -> timestamp-micros, time -> time-micros, integer -> long, number -> double;
  lists in the 3-level `list`/`element` form (WRITE_OLD_LIST_STRUCTURE off); unions of
  several types become disjoint records. A value that does not fit is NULLed and recorded in
  `_airbyte_meta.changes` (change NULLED, reason DESTINATION_FIELD_SIZE_LIMITATION).
- The MySQL source (airbyte-integrations/connectors/source-mysql/src/main/java/io/airbyte/
  integrations/source/mysql/MySqlSourceOperations.java): TINYINT(1) and BIT(1) -> boolean,
  TINYINT..BIGINT (unsigned too), FLOAT, DOUBLE, DECIMAL -> number (later: integers ->
  integer), DATE / DATETIME / TIMESTAMP / TIME -> strings (later: the date, timestamp and
  time formats; DATETIME's wall clock serialised without zone), YEAR -> its text,
  BINARY / VARBINARY / BLOB / BIT(n > 1) / GEOMETRY -> base64 text of the bytes, JSON, ENUM,
  SET, TEXT -> strings. The version read maps booleans with `getInt() == 1` (2..127 ->
  false); a compatible write follows JDBC's `getBoolean()` (non-zero -> true), the rule the
  cut-over was specified with, and counts every value other than 0 and 1 either way.
"""
