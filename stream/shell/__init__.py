"""The Kafka-facing shell: Faust agents, topics, metrics, web views."""
