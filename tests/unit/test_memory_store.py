import pytest

from tests.store_contract import StoreContract
from vsmmon.store.memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()
