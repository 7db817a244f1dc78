"""The pure core: no Faust, no Kafka, no clock. Everything here is deterministic."""
