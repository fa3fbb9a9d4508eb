"""backdrop's command-line client: `backdrop generate`, `jobs`, `cancel` and `batch`
against any stack's HTTPS API, with nothing but httpx and Pillow (`pip install ./client`).

`backdrop_client.client` is the API client the commands use; it imports nothing from the
service or the local stack (an import-linter contract holds that)."""
