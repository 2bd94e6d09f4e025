"""The web-stack ceiling: the same request validation as the service, and no work at all.

Reads the served model's contract (``BENCH_CONTRACT`` = path to contract.json) so the body is
validated by the very same validator; answers a constant.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from models.contract import FeatureContract
from service.schemas import RecordValidator


def create_app() -> FastAPI:
    contract = FeatureContract.load(Path(os.environ["BENCH_CONTRACT"]))
    validator = RecordValidator(contract, batch_max=1)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/score")
    async def score(request: Request) -> JSONResponse:
        try:
            validator.one(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"probability_of_default": 0.5})

    return app
