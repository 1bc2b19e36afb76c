"""Options that every HTTPS source shares, beside its own (a connector's Settings extends
this model)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca_bundle: Path | None = Field(
        None, description="PEM file of the CAs to trust for this source's calls (default: "
                          "REQUESTS_CA_BUNDLE or SSL_CERT_FILE, else the system store)")
    timeout: float = Field(60, gt=0, le=600, description="seconds to wait for one answer")
    max_attempts: int = Field(8, ge=1, le=20, description="tries of one call, the first included")
    backoff: float = Field(1.0, ge=0, le=60,
                           description="first wait before a retry, in seconds; doubles each time")
    max_retry_wait: float = Field(
        300, ge=0, le=3600, description="the longest single wait for a rate limit: an API that "
                                        "asks for more fails the call instead")
    max_response_bytes: int = Field(256 * 2**20, ge=2**16,
                                    description="an answer larger than this is refused")
    workers: int = Field(4, ge=1, le=32, description="calls made at once")

    @field_validator("ca_bundle")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a readable file")
        return path
