"""Request and response bodies of the server (pydantic models; they make the OpenAPI page at ``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sentences: list[str] = Field(min_length=1, description="source sentences, one translation each")
    beam: int | None = Field(None, ge=1, description="beam size (default: the run's decoding.beam_size)")
    alpha: float | None = Field(None, ge=0, description="GNMT length penalty (default: the run's decoding.alpha)")
    n_best: int = Field(1, ge=1, description="hypotheses per sentence (at most the beam size)")
    attention: bool = Field(False, description="include each hypothesis' attention matrix and its pieces")
    alignments: bool = Field(False, description="include each hypothesis' Pharaoh word alignment (i-j)")


class Hypothesis(BaseModel):
    text: str
    score: float = Field(description="log-probability divided by the GNMT length penalty")
    log_prob: float
    attention: list[list[float]] | None = Field(
        None, description="rows: output pieces (+ </s> when the engine gives it); columns: source pieces + </s>")
    source_pieces: list[str] | None = None
    target_pieces: list[str] | None = None
    alignment: str | None = Field(None, description="Pharaoh format: source word i - output word j, 0-based")


class Translation(BaseModel):
    text: str = Field(description="the best hypothesis")
    hypotheses: list[Hypothesis]


class TranslateResponse(BaseModel):
    translations: list[Translation]


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, description="documents, one prediction each")
    token_weights: bool = Field(False, description="include each token's attention weight")


class Classification(BaseModel):
    label: str
    probabilities: dict[str, float]
    tokens: list[str] | None = None
    token_weights: list[float] | None = None


class ClassifyResponse(BaseModel):
    results: list[Classification]


class ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong, in one line")
    details: list[str] = Field(default_factory=list, description="one line per invalid field")
