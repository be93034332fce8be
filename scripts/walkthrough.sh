#!/usr/bin/env bash
# The README's path from `make demo` to a position of your own, run as written on the local
# devnet: tests/cli/test_walkthrough.py runs it in `make test`, so the README cannot drift.
#
#   scripts/walkthrough.sh [WORKDIR]    (default: a new temporary directory)
#
# Uses `lpbot` from PATH (or $LPBOT). Stops the devnet it started when it ends.
set -euo pipefail
lpbot=${LPBOT:-lpbot}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
step() { printf '\n== %s\n' "$*"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
trap '$lpbot devnet down >/dev/null 2>&1 || true' EXIT

step "1. a local chain with Uniswap V3 and a 2-of-3 Safe"
$lpbot devnet up
# with no lpbot.toml yet, every command reads the running devnet's own configuration
token=$($lpbot config check --json | json 'd["positions"][0]["token_id"]')

step "2. a configuration: the Safe's position #$token, its keys, the paper hedge"
$lpbot init --token-id "$token"

step "3. keys: a new one for the bot, and the first Safe owner's (a devnet account)"
export LPBOT_BOT_KEY_PASSWORD=bot-password LPBOT_OWNER1_KEY_PASSWORD=owner1-password
$lpbot keys new bot
# Anvil's published development key of the devnet's first Safe owner; on a real chain, run
# `lpbot keys import owner1` and paste the key at the prompt (it is not echoed)
echo 0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6 |
    $lpbot keys import owner1
$lpbot devnet fund "$($lpbot keys address bot)" --eth 10
$lpbot keys list
# the bot's key is new: the devnet's module knows another operator, so the check says NOT
# ready (exit 1) and names both keys; until the owners make the new key the module's operator
# (setOperator), `lpbot run` cannot rebalance alone through it and asks the owners instead
$lpbot config check --online || test $? -eq 1

step "4. some market; quote a new position; show and plan the Safe's"
$lpbot devnet market --pool USDC/WETH-500 --steps 6 --step-seconds 600 --vol 0.8 --seed 3
$lpbot position quote --pool USDC/WETH-500 --capital "5000 USDC" --capital "1.5 WETH" \
    --strategy vol_band
$lpbot position show "$token" | head -4
$lpbot position plan "$token"

step "5. a rebalance: plan (dry-run report), approve, one owner signs, another executes"
$lpbot rebalance plan "$token" --width-ticks 600 --json > plan.json
report=$(json 'd["rebalance"]["report_id"]' < plan.json)
echo "report $report (plan.json)"
$lpbot rebalance approve "$report" --yes
$lpbot rebalance sign "$report" --keystore owner1 --out owner1.sig.json
# the second owner signs elsewhere (the Safe app, a hardware wallet); on the devnet, account 10
$lpbot rebalance execute "$report" --dev-owner 10 --signature owner1.sig.json
$lpbot rebalance list

step "6. the daemon for a few ticks, then what it saw"
sed -i -e 's/^monitor_seconds = .*/monitor_seconds = 2/' \
    -e 's/^rebalance_check_seconds = .*/rebalance_check_seconds = 3/' \
    -e 's/^hedge_sync_seconds = .*/hedge_sync_seconds = 2/' lpbot.toml
$lpbot run --seconds 8
$lpbot status
$lpbot report
$lpbot export --out actions.csv
test -s .lpbot/reports/performance.html
test "$(wc -l < actions.csv)" -gt 1
step "done"
