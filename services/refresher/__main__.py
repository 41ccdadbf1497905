from services.refresher.service import lifespan
from shared.service import run_service

run_service("refresher", lifespan)
