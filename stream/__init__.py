"""Journey Stream: real-time customer journey orchestration on Apache Kafka."""
