import { Counter, Gauge, type Registry } from 'prom-client';
import type { Direction } from './bridge.ts';

/**
 * Prometheus metrics of the relayed WebSockets, on the relay's registry:
 *
 *   relay_websockets_open{operation}                          gauge
 *   relay_websocket_messages_total{operation,direction}       counter (data messages received from the caller,
 *                                                             to_openai, or from OpenAI, to_caller)
 *   relay_websocket_bytes_total{operation,direction}          counter (their payload bytes)
 *
 * `operation` is a WebSocket endpoint's operation name (a handful, from the spec). Each message only adds
 * to plain numbers; the counters are filled from them when scraped.
 */

export interface SocketTally {
  message(direction: Direction, bytes: number): void;
  /** The socket closed (open sockets −1). Extra calls do nothing. */
  closed(): void;
}

export interface WebSocketMetrics {
  /** A socket of `operation` opened (open sockets +1). */
  opened(operation: string): SocketTally;
}

interface Totals {
  open: number;
  messages: Record<Direction, number>;
  bytes: Record<Direction, number>;
}

const DIRECTIONS: readonly Direction[] = ['to_openai', 'to_caller'];

export function createWebSocketMetrics(registry: Registry): WebSocketMetrics {
  const byOperation = new Map<string, Totals>();
  new Gauge({
    name: 'relay_websockets_open',
    help: 'WebSockets being relayed right now.',
    labelNames: ['operation'] as const,
    registers: [registry],
    collect() {
      for (const [operation, t] of byOperation) this.set({ operation }, t.open);
    },
  });
  const perDirection = (name: string, help: string, field: 'messages' | 'bytes') =>
    new Counter({
      name,
      help,
      labelNames: ['operation', 'direction'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [operation, t] of byOperation) for (const direction of DIRECTIONS) this.inc({ operation, direction }, t[field][direction]);
      },
    });
  perDirection('relay_websocket_messages_total', 'Messages relayed over WebSockets, by direction (to_openai, to_caller).', 'messages');
  perDirection('relay_websocket_bytes_total', 'Payload bytes relayed over WebSockets, by direction (to_openai, to_caller).', 'bytes');

  return {
    opened(operation) {
      let t = byOperation.get(operation);
      if (!t) byOperation.set(operation, (t = { open: 0, messages: { to_openai: 0, to_caller: 0 }, bytes: { to_openai: 0, to_caller: 0 } }));
      const totals = t;
      totals.open++;
      let open = true;
      return {
        message(direction, bytes) {
          totals.messages[direction]++;
          totals.bytes[direction] += bytes;
        },
        closed() {
          if (!open) return;
          open = false;
          totals.open--;
        },
      };
    },
  };
}
