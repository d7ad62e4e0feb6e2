"""INA226 / INA219 current and voltage sensors on an I2C (SMBus) bus, one per panel."""
