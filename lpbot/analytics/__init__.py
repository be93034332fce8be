"""Position analytics: value, amounts, fees, IL, greeks, VaR. Pure; floats only where labelled."""
