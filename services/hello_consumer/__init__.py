"""The consumer: reads greeting requests, writes greetings exactly once."""
