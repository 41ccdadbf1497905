"""callback_gateway: answers VK's Callback API and hands events to RabbitMQ."""
from services.callback_gateway.workers import main

if __name__ == "__main__":  # workers are spawned interpreters that import this module too
    main()
