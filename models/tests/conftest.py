import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(2)


@pytest.fixture
def micro():
    from haltingvt import preset

    return preset("test-micro")
