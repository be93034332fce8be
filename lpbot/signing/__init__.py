"""Signers: who may sign what lpbot sends. One protocol, several implementations."""
