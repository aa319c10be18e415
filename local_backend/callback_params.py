"""Resolve callback parameters nested inside array and object arguments.

processes-dask's ``@process`` wrapper resolves a ``{"from_parameter": ...}`` only when it is a whole argument. The
stock client writes ``merge_cubes(..., overlap_resolver="max")`` as a callback ``max(data=[x, y])``: the references sit
inside a list, reached the implementation unresolved and failed with a ``TypeError`` (HTTP 500). This wrapper
substitutes them from the callback's named parameters first.
"""

from typing import Any, Callable

__all__ = ["resolve_nested_parameters"]


def _resolve(value: Any, named: dict[str, Any]) -> Any:
    from openeo_pg_parser_networkx.pg_schema import ParameterReference

    if isinstance(value, ParameterReference) and value.from_parameter in named:
        return named[value.from_parameter]
    if isinstance(value, list):
        return [_resolve(v, named) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, named) for k, v in value.items()}
    return value


def resolve_nested_parameters(func: Callable[..., Any]) -> Callable[..., Any]:
    """Registry wrapper: resolve parameter references inside list/dict keyword arguments of ``func``."""

    def wrapper(*args: Any, named_parameters: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if named_parameters:
            kwargs = {k: _resolve(v, named_parameters) if isinstance(v, (list, dict)) else v
                      for k, v in kwargs.items()}
        return func(*args, named_parameters=named_parameters, **kwargs)

    wrapper.__name__ = getattr(func, "__name__", "wrapper")
    wrapper.__doc__ = func.__doc__
    return wrapper
