"""Simulated multi-channel customer journeys: a pure generator and a Kafka producer shell."""
