"""hello-operator: reconciles HelloPipeline resources and scales consumers by Kafka lag."""
