"""hello-load's settings from the environment; prefix ``HELLO_LOAD_``, nested delimiter ``__``.

Only what a CI job or a Kubernetes Job would rather not put on the command
line lives here: the Kafka connection used for verification (e.g.
``HELLO_LOAD_KAFKA__SASL_PASSWORD``) and the bearer token. Command-line
options take precedence.
"""

from __future__ import annotations

import pydantic
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hello_core.settings import ENV_NESTED_DELIMITER, KafkaSettings


class LoadSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HELLO_LOAD_", env_nested_delimiter=ENV_NESTED_DELIMITER, extra="ignore"
    )

    token: pydantic.SecretStr | None = Field(
        None, description="Bearer token sent as the authorization metadata of every call."
    )
    kafka: KafkaSettings = Field(
        default_factory=lambda: KafkaSettings.model_validate({"client_id": "hello-load"}),
        description="Connection used to read the output topic in verification mode.",
    )
