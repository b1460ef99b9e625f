"""Demo: print what a HEIF/AVIF file holds and convert each of its images to PNG.

Usage: python examples/demo.py INPUT.heic OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import heifkit


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    source, out_dir = Path(argv[1]), Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    heif_file = heifkit.open_heif(source)
    print(f"{source.name}: {heif_file.mimetype}, {len(heif_file)} image(s), primary #{heif_file.primary_index}")
    print(f"libheif {heifkit.libheif_version()}")
    for index, image in enumerate(heif_file):
        info = image.info
        print(
            f"  #{index}: {image.size[0]}x{image.size[1]} {image.mode}, {info['bit_depth']}-bit, "
            f"thumbnails {info['thumbnails']}, exif {'yes' if info['exif'] else 'no'}, "
            f"xmp {'yes' if info.get('xmp') else 'no'}, "
            f"colour {'ICC' if 'icc_profile' in info else 'NCLX' if 'nclx_profile' in info else 'none'}"
        )
        target = out_dir / f"{source.stem}-{index}.png"
        image.to_pillow().save(target)
        print(f"     -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
