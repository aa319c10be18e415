"""openeo-driver configuration file (loaded through ``OPENEO_BACKEND_CONFIG``; values from ``S1NDVI_*`` env vars).

openeo-driver reads its global configuration from a Python file named by the ``OPENEO_BACKEND_CONFIG`` environment
variable; :func:`local_backend.api.server.build_app` points it here and sets ``S1NDVI_USERS_FILE`` first.
"""

import os
from pathlib import Path

from openeo_driver.config import OpenEoBackendConfig

from local_backend.api.users import UsersFile

_users = UsersFile(Path(os.environ.get("S1NDVI_USERS_FILE", "users.json")))

config = OpenEoBackendConfig(
    id="s1ndvi-local",
    capabilities_title="s1ndvi local openEO backend",
    capabilities_description=(
        "Local openEO backend of the s1ndvi project: runs process graphs and Python UDFs on local files with "
        "openeo-processes-dask. A UDF is arbitrary code run with the server's rights."
    ),
    enable_basic_auth=True,
    valid_basic_auth=_users.verify,
    enable_oidc_auth=False,
    oidc_providers=[],
    flask_settings={"MAX_CONTENT_LENGTH": 64 * 2**20},
)
