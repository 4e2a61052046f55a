"""Device profiles (one YAML register map per sensor or controller model, with its source)
under ``profiles/``, and example site configs under ``sites/``. Data only; the schema lives in
:mod:`coldchain.profiles`.
"""

from pathlib import Path

PROFILES_DIR = Path(__file__).parent / "profiles"
SITES_DIR = Path(__file__).parent / "sites"
