"""The gRPC API: validates SayHello calls and publishes them to Kafka."""
