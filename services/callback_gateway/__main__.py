"""``python -m services.callback_gateway``: run the gateway (``GATEWAY_WORKERS`` processes)."""

from services.callback_gateway.service import SERVICE, lifespan
from services.callback_gateway.workers import run_workers

if __name__ == "__main__":  # workers are spawned interpreters that import this module too
    run_workers(SERVICE, lifespan)
