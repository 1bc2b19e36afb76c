"""Options of an `aws` source in annexa.yaml. Credentials never live here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regions: list[str] = Field(min_length=1, description="regions to collect regional services in")
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = None
    profile: str | None = None
    endpoint_url: str | None = Field(
        None, description="send every call here (an emulator or a private endpoint)"
    )
    max_attempts: int = Field(10, ge=1, le=20, description="botocore adaptive retry attempts")
    workers: int = Field(8, ge=1, le=32, description="services and regions read at once")

    @field_validator("regions")
    @classmethod
    def _regions_look_like_regions(cls, regions: list[str]) -> list[str]:
        for region in regions:
            parts = region.split("-")
            if len(parts) < 3 or not parts[-1].isdigit():
                raise ValueError(f"{region!r} is not an AWS region name such as eu-west-1")
        return regions
