"""CUDA_VISIBLE_DEVICES as CUDA reads it: the parser behind GD301, with the inputs people really type."""

from __future__ import annotations

import pytest

from gpudoctor.rules.environment import VisibleDevices, parse_visible_devices


@pytest.mark.parametrize(
    ("value", "count", "expected"),
    [
        ("0", 1, VisibleDevices(visible=(0,))),
        ("1,0", 2, VisibleDevices(visible=(1, 0))),
        (" 0 , 1 ", 2, VisibleDevices(visible=(0, 1))),
        ("1gpu2,2ampere", 3, VisibleDevices(visible=(1, 2))),  # strtoul reads the leading digits
        ("+1", 2, VisibleDevices(visible=(1,))),
        ("", 1, VisibleDevices(stopped_at="", reason="it is empty")),
        ("-1", 2, VisibleDevices(stopped_at="-1", reason="it is negative")),
        ("bash", 1, VisibleDevices(stopped_at="bash", reason="it is not a GPU index")),
        ("0,-1,1", 2, VisibleDevices(visible=(0,), stopped_at="-1", reason="it is negative")),
        ("0,,1", 2, VisibleDevices(visible=(0,), stopped_at="", reason="it is empty")),
        ("0,0", 2, VisibleDevices(stopped_at="0", reason="GPU 0 is listed twice, which hides every GPU")),
        ("2", 1, VisibleDevices(stopped_at="2", reason="there is no GPU 2 (the driver sees 1 GPU: index 0)")),
        (
            "0,5,1",
            2,
            VisibleDevices(
                visible=(0,),
                stopped_at="5",
                reason="there is no GPU 5 (the driver sees 2 GPUs: index 0 to 1)",
            ),
        ),
        ("7", None, VisibleDevices(visible=(7,))),  # no GPU count: an index cannot be judged out of range
        ("GPU-8932f937-d72c-4106-c12f-20bd9faed9f6", 1, VisibleDevices(by_uuid=True)),
        (
            "MIG-GPU-a,MIG-GPU-a",
            1,
            VisibleDevices(stopped_at="MIG-GPU-a,MIG-GPU-a", reason="a device is listed twice", by_uuid=True),
        ),
    ],
)
def test_parse_visible_devices(value: str, count: int | None, expected: VisibleDevices) -> None:
    assert parse_visible_devices(value, count) == expected
