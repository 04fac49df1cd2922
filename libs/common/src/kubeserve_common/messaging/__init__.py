"""Event bus port and adapters (RabbitMQ, in-process), outbox relay, inbox, consumer runner."""
