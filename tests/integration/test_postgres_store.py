import pytest

from tests.store_contract import StoreContract
from vsmmon.store.postgres import PostgresStore


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, store: PostgresStore) -> PostgresStore:
        return store
