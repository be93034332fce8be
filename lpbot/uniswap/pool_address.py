"""Pool addresses from CREATE2: ``PoolAddress.computeAddress`` and zkSync Era's variant."""

from __future__ import annotations

from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from eth_utils.conversions import to_bytes

# keccak256("zksyncCreate2"): zkSync Era's CREATE2 prefix (ContractDeployer.getNewAddressCreate2)
ZKSYNC_CREATE2_PREFIX = keccak(b"zksyncCreate2")
EMPTY_INPUT_HASH = keccak(b"")


def _address_bytes(address: str) -> bytes:
    raw = to_bytes(hexstr=address)
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {address!r}")
    return raw


def sort_tokens(token_a: str, token_b: str) -> tuple[str, str]:
    """PoolAddress.getPoolKey's order: token0 is the lower address; one token twice is refused."""
    a, b = _address_bytes(token_a), _address_bytes(token_b)
    if a == b:
        raise ValueError(f"a pool needs two different tokens, got {token_a} twice")
    return (token_a, token_b) if a < b else (token_b, token_a)


def pool_salt(token_a: str, token_b: str, fee: int) -> bytes:
    """keccak256(abi.encode(token0, token1, fee)), the salt UniswapV3PoolDeployer uses."""
    token0, token1 = sort_tokens(token_a, token_b)
    return keccak(
        b"\x00" * 12
        + _address_bytes(token0)
        + b"\x00" * 12
        + _address_bytes(token1)
        + fee.to_bytes(32, "big")
    )


def compute_pool_address(
    factory: str, token_a: str, token_b: str, fee: int, init_code_hash: str, *, zksync: bool = False
) -> str:
    """PoolAddress.computeAddress (v3-periphery 1.0.0), or zkSync Era's CREATE2 when ``zksync``.

    EVM: keccak256(0xff ++ factory ++ salt ++ init_code_hash)[12:].
    zkSync Era: keccak256(keccak256("zksyncCreate2") ++ pad32(factory) ++ salt ++ bytecode_hash
    ++ keccak256(constructor_input))[12:], where ``init_code_hash`` is the pool's bytecode hash and
    the pool takes no constructor input.
    """
    salt = pool_salt(token_a, token_b, fee)
    code_hash = to_bytes(hexstr=init_code_hash)
    if len(code_hash) != 32:
        raise ValueError(f"init code hash must be 32 bytes, got {init_code_hash!r}")
    if zksync:
        digest = keccak(
            ZKSYNC_CREATE2_PREFIX
            + b"\x00" * 12
            + _address_bytes(factory)
            + salt
            + code_hash
            + EMPTY_INPUT_HASH
        )
    else:
        digest = keccak(b"\xff" + _address_bytes(factory) + salt + code_hash)
    return to_checksum_address(digest[12:])
