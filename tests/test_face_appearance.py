"""Appearance: reflectance ranges and semantics, facial hair, glasses geometry (on the toy model)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from egoface.face import Appearance, glasses_geometry, sample_appearance, surface_reflectance
from toy_face import EYE_CENTRES, toy_face


def test_reflectance_is_in_range_and_eyes_have_a_dark_pupil_and_a_mirror_cornea() -> None:
    model = toy_face()
    reflectance = surface_reflectance(model, Appearance())
    assert reflectance.albedo.shape == (model.num_vertices,) and reflectance.albedo.dtype == np.float32
    assert reflectance.albedo.min() >= 0 and reflectance.albedo.max() <= 1
    front_pole = model.topology.eyeball_vertex_ids[0][0]  # looks along +Z: the pupil
    assert reflectance.albedo[front_pole] < 0.05 and reflectance.specular[front_pole] > 0.8
    back_pole = model.topology.eyeball_vertex_ids[0][-1]
    assert reflectance.albedo[back_pole] > 0.6  # sclera


def test_facial_hair_darkens_the_beard_area_only() -> None:
    model = toy_face()
    shaved = surface_reflectance(model, Appearance(pores=0.0, skin_variation=0.0, brow_density=0.0))
    bearded = surface_reflectance(model, Appearance(pores=0.0, skin_variation=0.0, brow_density=0.0, beard=1.0))
    vertices = model.neutral_vertices.numpy()
    lips = model.topology.lip_pairs
    mouth_y = 0.5 * (vertices[lips.upper_center, 1] + vertices[lips.lower_center, 1])
    below_mouth = np.where(vertices[:49, 1] < mouth_y - 10)[0]
    above_eyes = np.where(vertices[:49, 1] > 20)[0]
    assert (bearded.albedo[below_mouth] < 0.8 * shaved.albedo[below_mouth]).all()
    assert np.allclose(bearded.albedo[above_eyes], shaved.albedo[above_eyes])


def test_appearance_is_deterministic_and_validated() -> None:
    a = sample_appearance(np.random.default_rng(1))
    assert a == sample_appearance(np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"skin_albedo must be in \[0, 1\]"):
        dataclasses.replace(a, skin_albedo=1.5)
    samples = [sample_appearance(np.random.default_rng(seed)) for seed in range(200)]
    assert 0.1 < np.mean([s.glasses for s in samples]) < 0.4
    assert 0.2 < np.mean([s.stubble > 0 for s in samples]) < 0.6


def test_glasses_sit_in_front_of_the_eyes_around_the_pupils() -> None:
    glasses = glasses_geometry(EYE_CENTRES, Appearance(glasses=True, glasses_lens_mm=(50.0, 36.0)))
    lens = glasses.lens_vertices
    assert (lens[:, 2] > EYE_CENTRES[:, 2].max() + 20).all()  # in front of the corneas
    for centre in EYE_CENTRES:
        side = lens[np.sign(lens[:, 0]) == np.sign(centre[0])]
        assert np.allclose(side[:, :2].mean(axis=0), centre[:2], atol=1.0)
        assert np.ptp(side[:, 0]) == pytest.approx(50.0, abs=0.5) and np.ptp(side[:, 1]) == pytest.approx(36.0, abs=0.5)
    assert glasses.frame_triangles.max() < len(glasses.frame_vertices)
    assert glasses.frame_vertices[:, 2].min() < -50  # temples run back toward the ears
