"""Validation of SayHello input. Pure: no I/O.

The rules live in ``hello_core.names`` so the consumer enforces the same
contract on what it reads from Kafka.
"""

from __future__ import annotations

from hello_core.errors import ValidationError
from hello_core.names import MAX_NAME_LENGTH, name_problem

__all__ = ["MAX_NAME_LENGTH", "validate_name"]


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if it is acceptable, else raise ValidationError.

    See ``hello_core.names`` for what is refused and why.
    """
    problem = name_problem(name)
    if problem is not None:
        raise ValidationError(problem)
    return name
