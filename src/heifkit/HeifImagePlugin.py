"""Importing this module registers heifkit's HEIF plugin with Pillow (pillow_heif compatibility)."""

from .plugin import register_heif_opener

register_heif_opener()
