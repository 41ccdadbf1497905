"""callback_gateway: answers VK's Callback API and hands events to RabbitMQ."""
