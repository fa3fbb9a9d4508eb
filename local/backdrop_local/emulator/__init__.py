"""Provider emulator: Picsart and Photoroom stand-ins over real HTTP, for local runs and tests.

Start a `ProviderEmulator` with `EmulatorSettings`, point the provider clients at its
`picsart_base_url` and `photoroom_base_url`, and stop it when done.
"""

from backdrop_local.emulator.server import ProviderEmulator
from backdrop_local.emulator.settings import EmulatorSettings

__all__ = ["EmulatorSettings", "ProviderEmulator"]
