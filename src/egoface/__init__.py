"""egoface: real-time facial tracking from the infrared cameras inside a VR headset.

Rooms (see design.md): `egoface.face` (face models), `egoface.render` (cameras, rasterizer, shaders),
`egoface.cli` (the `egoface` command).
"""

__version__ = "0.1.0"
