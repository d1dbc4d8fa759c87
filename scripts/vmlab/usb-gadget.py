#!/usr/bin/env python3
"""The VM lab's check of the USB gadget side: a configfs gadget with one FunctionFS function
(a vendor interface, two bulk endpoints) bound to dummy_udc; the host side must enumerate it.
Usage: usb-gadget.py VENDOR PRODUCT (hex). Prints the enumerated device's sysfs path."""
import os, struct, sys, time, glob

vendor, product = sys.argv[1], sys.argv[2]
gadget = "/sys/kernel/config/usb_gadget/wefttest"
os.makedirs(f"{gadget}/strings/0x409", exist_ok=True)
def put(path, value):
    with open(path, "w") as f:
        f.write(value)
put(f"{gadget}/idVendor", "0x" + vendor)
put(f"{gadget}/idProduct", "0x" + product)
put(f"{gadget}/strings/0x409/manufacturer", "weft")
put(f"{gadget}/strings/0x409/product", "weft link")
put(f"{gadget}/strings/0x409/serialnumber", "lab-0001")
os.makedirs(f"{gadget}/configs/c.1/strings/0x409", exist_ok=True)
put(f"{gadget}/configs/c.1/strings/0x409/configuration", "weft")
os.makedirs(f"{gadget}/functions/ffs.weft", exist_ok=True)
os.symlink(f"{gadget}/functions/ffs.weft", f"{gadget}/configs/c.1/ffs.weft")
os.makedirs("/dev/ffs-weft", exist_ok=True)
os.system("mount -t functionfs weft /dev/ffs-weft")

def interface():
    return struct.pack("<BBBBBBBBB", 9, 4, 0, 0, 2, 0xFF, 0, 0, 1)
def endpoint(address, size):
    return struct.pack("<BBBBHB", 7, 5, address, 2, size, 0)
full = interface() + endpoint(0x81, 64) + endpoint(0x02, 64)
high = interface() + endpoint(0x81, 512) + endpoint(0x02, 512)
flags = 1 | 2  # full and high speed descriptors
body = struct.pack("<II", 3, 3) + full + high
descriptors = struct.pack("<III", 3, 12 + len(body), flags) + body
text = b"weft link\0"
strings_body = struct.pack("<II", 1, 1) + struct.pack("<H", 0x409) + text
strings = struct.pack("<II", 2, 8 + len(strings_body)) + strings_body
ep0 = os.open("/dev/ffs-weft/ep0", os.O_RDWR)
os.write(ep0, descriptors)
os.write(ep0, strings)
print("gadget endpoints:", sorted(os.listdir("/dev/ffs-weft")))
udc = os.listdir("/sys/class/udc")[0]
put(f"{gadget}/UDC", udc)
for _ in range(200):
    for device in glob.glob("/sys/bus/usb/devices/*"):
        try:
            if open(f"{device}/idVendor").read().strip() == vendor:
                print("enumerated:", device, open(f"{device}/product").read().strip(),
                      "speed", open(f"{device}/speed").read().strip())
                sys.exit(0)
        except OSError:
            pass
    time.sleep(0.1)
print("the host side never saw the gadget")
sys.exit(1)
