// A Map kept as a small cache or record: in insertion order, the oldest entries dropped once it
// holds more than a bound. Pure.

/** Sets key in map, then drops the oldest entries beyond max. */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as K);
}
