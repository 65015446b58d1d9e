"""One registry per family (backbones, models): named configurations, and the class that builds each kind.

A configuration names its class through one field (`family` for backbones, `arch` for models). A new variant is a
new registered configuration, usually `dataclasses.replace` of an existing one, never a new class:

    register_model("refa_small", replace(get_model_config("refa_tiny"), hidden_features=512))
    model = create_model("refa_small", input_size=(128, 128))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from torch import nn

from egoface.models.config import BackboneConfig, ModelConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Registry",
    "backbone_from_config",
    "create_backbone",
    "create_model",
    "get_backbone_config",
    "get_model_config",
    "list_backbones",
    "list_models",
    "model_from_config",
    "register_backbone",
    "register_backbone_class",
    "register_model",
    "register_model_class",
]

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")
ModuleT = TypeVar("ModuleT", bound=type[nn.Module])


class Registry(Generic[ConfigT]):
    """Named configurations of one family, and the module class for each value of `config.<key_field>`."""

    def __init__(self, family: str, key_field: str) -> None:
        self.family = family
        self.key_field = key_field
        self._configs: dict[str, ConfigT] = {}
        self._classes: dict[str, type[nn.Module]] = {}

    def register_class(self, key: str) -> Callable[[ModuleT], ModuleT]:
        """Class decorator: configs whose `key_field` equals `key` are built by the decorated class."""

        def decorate(cls: ModuleT) -> ModuleT:
            if key in self._classes:
                raise ValueError(f"{self.family} class for {self.key_field}={key!r} is already registered")
            self._classes[key] = cls
            return cls

        return decorate

    def register(self, name: str, config: ConfigT) -> None:
        """Register `config` under `name`; names are unique."""
        if name in self._configs:
            raise ValueError(f"{self.family} {name!r} is already registered")
        key = getattr(config, self.key_field)
        if key not in self._classes:
            raise ValueError(
                f"{self.family} {name!r}: no class for {self.key_field}={key!r}; known: {sorted(self._classes)}"
            )
        self._configs[name] = config

    def names(self) -> list[str]:
        return sorted(self._configs)

    def config(self, name: str) -> ConfigT:
        """The registered configuration; unknown names raise a KeyError listing the registered ones."""
        try:
            return self._configs[name]
        except KeyError:
            raise KeyError(f"unknown {self.family} {name!r}; registered: {', '.join(self.names())}") from None

    def build(self, config: ConfigT) -> nn.Module:
        """The module for `config` (which need not be registered)."""
        key = getattr(config, self.key_field)
        if key not in self._classes:
            raise KeyError(f"no {self.family} class for {self.key_field}={key!r}; known: {sorted(self._classes)}")
        return self._classes[key](config)

    def create(self, name: str, **overrides: Any) -> nn.Module:
        """Build the registered configuration `name` with some fields replaced."""
        config = self.config(name)
        valid = {f.name for f in dataclasses.fields(config)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise TypeError(f"unknown {self.family} override(s) {unknown} for {name!r}; valid fields: {sorted(valid)}")
        return self.build(dataclasses.replace(config, **overrides))


_BACKBONES: Registry[BackboneConfig] = Registry("backbone", "family")
_MODELS: Registry[ModelConfig] = Registry("model", "arch")

register_backbone_class = _BACKBONES.register_class
register_backbone = _BACKBONES.register
backbone_from_config = _BACKBONES.build
get_backbone_config = _BACKBONES.config
list_backbones = _BACKBONES.names

register_model_class = _MODELS.register_class
register_model = _MODELS.register
model_from_config = _MODELS.build
get_model_config = _MODELS.config
list_models = _MODELS.names


def create_backbone(name: str, **overrides: Any) -> nn.Module:
    """A registered backbone, e.g. `create_backbone("mobilenetv3_small", width_mult=0.5, in_chans=4)`."""
    return _BACKBONES.create(name, **overrides)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """A registered tracker, e.g. `create_model("refa_tiny", input_size=(128, 128), backbone="mobilenetv3_tiny")`.

    `backbone` may be given as a registered backbone name or as a backbone config.
    """
    if isinstance(overrides.get("backbone"), str):
        overrides["backbone"] = get_backbone_config(overrides["backbone"])
    return _MODELS.create(name, **overrides)
