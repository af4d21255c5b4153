// Ethernet frames built byte by byte, for running XDP programs on them with BPF_PROG_TEST_RUN
// (bench/datapath, the pod filter's kernel tests) rather than sending traffic.

/** An Ethernet + IPv4 + UDP frame from source to 10.0.0.2:dport, with payload. */
export function udpFrame(source: string, dport: number, payload: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(17, 9);
  Buffer.from(source.split(".").map(Number)).copy(ip, 12);
  Buffer.from([10, 0, 0, 2]).copy(ip, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

/** XDP verdicts, as BPF_PROG_TEST_RUN returns them. */
export const XDP = { ABORTED: 0, DROP: 1, PASS: 2 } as const;
