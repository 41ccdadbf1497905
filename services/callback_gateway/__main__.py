from services.callback_gateway.app import lifespan
from shared.service import run_service

run_service("callback_gateway", lifespan)
