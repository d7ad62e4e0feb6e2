"""GoodWe hybrid and grid inverters over their UDP (port 8899) or Modbus TCP interface."""
