"""The demo's MPC Safe owner: a 2-of-3 key whose co-signer is its own process, on one host.

For ``lpbot demo --signer mpc`` only: the three parties' shares are generated on this host
(``insecure_single_host``: whoever reads this host could sign; a demo key guards nothing). Then
the Safe's third owner is swapped for the key's address by the other two, party 2 is served by
``lpbot cosigner serve`` in its own process with its own policy (the demo's policy key as its
automatic approver, the devnet's NonfungiblePositionManager, SwapRouter02 and MultiSendCallOnly
decoded), and party 3 is marked offline. What signs is then what ``[signer.mpc]`` configures
for ``lpbot run``: this host's party and the co-signer, on the policy key's signed approval.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from web3 import Web3

from lpbot.chain.artifacts import project_root
from lpbot.devnet.anvil import free_port
from lpbot.devnet.context import SAFE_OWNER_INDEXES
from lpbot.devnet.deploy import GAS, contract
from lpbot.devnet.keys import dev_signer
from lpbot.devnet.manifest import Manifest
from lpbot.errors import NeedsAttention
from lpbot.signing.local import LocalKeySigner
from lpbot.signing.mpc.auth import load_key
from lpbot.signing.mpc.config import LocalParty, MpcConfig, RemoteParty, local_parties
from lpbot.signing.mpc.coordinator import Coordinator
from lpbot.signing.mpc.errors import PartyUnavailable
from lpbot.signing.mpc.links import HttpLink, backend_missing
from lpbot.signing.mpc.rotate import prev_owner
from lpbot.signing.mpc.safe_owner import MpcSafeOwner, policy_approvals
from lpbot.signing.safe import (
    InnerCall,
    build_safe_transaction,
    combine,
    exec_transaction_data,
    sign,
)

PASSPHRASE_ENV = "LPBOT_DEMO_MPC_PASSPHRASE_"
API_KEY_ENV = "LPBOT_DEMO_COSIGNER_API_KEY"
RPC_URL_ENV = "LPBOT_DEMO_COSIGNER_RPC_URL"


def _swap_owner(w3: Web3, manifest: Manifest, old: str, new: str) -> None:
    """The other two development owners swap ``old`` for ``new`` (one Safe transaction)."""
    assert manifest.safe is not None
    safe = contract(w3, "SafeL2", manifest.safe)
    owners = list(safe.functions.getOwners().call())
    data = safe.encode_abi(fn_name="swapOwner", args=[prev_owner(owners, old), old, new])
    tx = build_safe_transaction(
        chain_id=manifest.chain_id,
        safe=manifest.safe,
        nonce=safe.functions.nonce().call(),
        calls=[InnerCall(manifest.safe, bytes.fromhex(data[2:]))],
        multisend_call_only=manifest.contracts["MultiSendCallOnly"],
    )
    signers = [dev_signer(i) for i in SAFE_OWNER_INDEXES if dev_signer(i).address != old]
    sigs = combine([sign(tx, s) for s in signers], safe.functions.getThreshold().call())
    sent = w3.eth.send_transaction(
        {
            "from": manifest.accounts.deployer,
            "to": manifest.safe,
            "data": exec_transaction_data(tx, sigs),
            "gas": GAS,
        }
    )
    if w3.eth.wait_for_transaction_receipt(sent)["status"] != 1:
        raise NeedsAttention(f"the Safe did not swap owner {old} for {new}")


def _wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    link = HttpLink(2, url, load_key(API_KEY_ENV))
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise NeedsAttention(f"the demo's co-signer exited with status {proc.returncode}")
            try:
                link.request("status", 5.0)
                return
            except PartyUnavailable:
                time.sleep(0.2)
    finally:
        link.close()
    raise NeedsAttention(f"the demo's co-signer did not answer at {url} in {seconds:.0f} s")


@contextlib.contextmanager
def demo_mpc_owner(
    w3: Web3, manifest: Manifest, work: Path, out: Callable[[str], None]
) -> Iterator[MpcSafeOwner]:
    """Generate the key, make it the Safe's third owner, start its co-signer; yield the owner
    (this host's party + the co-signer); stop the co-signer at the end."""
    missing = backend_missing()
    if missing is not None:
        raise NeedsAttention(f"--signer mpc: {missing}")
    home = work / "mpc"
    for i in (1, 2, 3):
        os.environ[f"{PASSPHRASE_ENV}{i}"] = secrets.token_hex(16)
    key = secrets.token_bytes(32)
    t0 = time.monotonic()
    config = local_parties(home, 3, 2, PASSPHRASE_ENV, insecure_single_host=True)
    with Coordinator.open(config) as coordinator:
        info = coordinator.keygen()
    out(
        f"   MPC key {info.address}: 2-of-3 DKLs23, generated in {time.monotonic() - t0:.1f} s "
        "(all three shares on this host: a demo key)"
    )
    old = dev_signer(SAFE_OWNER_INDEXES[2]).address
    _swap_owner(w3, manifest, old, info.address)
    out(f"   the Safe's owner {old} swapped for the MPC key by the other two owners")

    policy_key = LocalKeySigner.from_key(secrets.token_bytes(32))
    port = free_port()
    party2 = config.party(2)
    assert isinstance(party2, LocalParty)
    cosigner_config = {
        "mode": "mpc",
        "index": 2,
        "party_dir": str(party2.dir),
        "passphrase_env": f"{PASSPHRASE_ENV}2",
        "port": port,
        "api_key_env": API_KEY_ENV,
        "ledger": str(work / "cosigner.sqlite"),
        "policy": {
            "approvers": [policy_key.address],
            "auto_approvers": [policy_key.address],
            "max_auto_signatures_per_day": 50,
            "position_manager": manifest.contracts["NonfungiblePositionManager"],
            "swap_router": manifest.contracts["SwapRouter02"],
            "multisend_call_only": manifest.contracts["MultiSendCallOnly"],
            "pools": [
                {
                    "token0": manifest.tokens[p.token0].address,
                    "token1": manifest.tokens[p.token1].address,
                    "fee": p.fee,
                }
                for p in manifest.pools
            ],
            "chain_ids": [manifest.chain_id],
            "rpc_url_env": RPC_URL_ENV,
            # the demo's chain clock runs days ahead of the wall clock the co-signer reads
            "max_deadline_s": 30 * 86400,
        },
    }
    path = work / "cosigner.json"
    path.write_text(json.dumps(cosigner_config, indent=2))
    # the co-signer's process gets its own party's passphrase and the API key, nothing else
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env[f"{PASSPHRASE_ENV}2"] = os.environ.pop(f"{PASSPHRASE_ENV}2")
    env[API_KEY_ENV] = os.environ[API_KEY_ENV] = key.hex()
    env[RPC_URL_ENV] = manifest.rpc_url  # it reads who owns an NFT before adding to it
    os.environ.pop(f"{PASSPHRASE_ENV}3")  # the recovery party: offline from now on
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lpbot.signing.mpc.commands",
            "cosigner",
            "serve",
            "--config",
            str(path),
        ],
        cwd=project_root(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "cosigner.log").open("wb"),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url, proc, 60.0)
        out(f"   co-signer (party 2) at {url}, pid {proc.pid}; recovery party 3 offline")
        mpc = MpcConfig(
            threshold=2,
            share_count=3,
            address=info.address,
            parties=(
                config.party(1),
                RemoteParty(index=2, url=url, api_key_env=API_KEY_ENV),
                RemoteParty(index=3, url="http://127.0.0.1:9", offline=True),
            ),
        )
        yield MpcSafeOwner(mpc, policy_approvals(policy_key, 600))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
