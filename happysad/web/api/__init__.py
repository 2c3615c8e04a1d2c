"""The HTTP API, version 1: one router per resource."""

from fastapi import APIRouter

from happysad.web.api import jobs, models, predictions, retrain

api_router = APIRouter()
for module in (jobs, predictions, models, retrain):
    api_router.include_router(module.router)
