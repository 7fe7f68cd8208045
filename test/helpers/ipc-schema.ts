// Hand-built Arrow IPC schema messages with field types no writer we have emits (RunEndEncoded,
// ListView), assembled with the flatbuffers builders of the Arrow format itself — for rejection
// tests only.
import { Builder } from 'flatbuffers';
import { Field } from 'apache-arrow/fb/field';
import { Schema } from 'apache-arrow/fb/schema';
import { Message } from 'apache-arrow/fb/message';
import { MessageHeader } from 'apache-arrow/fb/message-header';
import { MetadataVersion } from 'apache-arrow/fb/metadata-version';
import { Type } from 'apache-arrow/fb/type';
import { Timestamp } from 'apache-arrow/fb/timestamp';
import { TimeUnit } from 'apache-arrow/fb/time-unit';
import { RunEndEncoded } from 'apache-arrow/fb/run-end-encoded';
import { ListView } from 'apache-arrow/fb/list-view';
import { FloatingPoint } from 'apache-arrow/fb/floating-point';
import { Precision } from 'apache-arrow/fb/precision';
import { Int } from 'apache-arrow/fb/int';

function field(b: Builder, name: string, typeType: Type, type: number, children: number[] = []): number {
  const n = b.createString(name);
  const c = Field.createChildrenVector(b, children);
  Field.startField(b);
  Field.addName(b, n);
  Field.addNullable(b, true);
  Field.addTypeType(b, typeType);
  Field.addType(b, type);
  Field.addChildren(b, c);
  return Field.endField(b);
}

/** A stream holding only a schema (time + one field of `kind`) and the end-of-stream marker. */
export function schemaOnlyStream(kind: 'RunEndEncoded' | 'ListView'): Buffer {
  const b = new Builder(1024);
  const ts = (() => { const z = b.createString('UTC'); Timestamp.startTimestamp(b); Timestamp.addUnit(b, TimeUnit.MICROSECOND); Timestamp.addTimezone(b, z); return Timestamp.endTimestamp(b); })();
  const time = field(b, 'time', Type.Timestamp, ts);
  const f64 = (() => { FloatingPoint.startFloatingPoint(b); FloatingPoint.addPrecision(b, Precision.DOUBLE); return FloatingPoint.endFloatingPoint(b); })();
  let odd: number;
  if (kind === 'RunEndEncoded') {
    const i32 = Int.createInt(b, 32, true);
    const runEnds = field(b, 'run_ends', Type.Int, i32);
    const values = field(b, 'values', Type.FloatingPoint, f64);
    odd = field(b, 'level', Type.RunEndEncoded, RunEndEncoded.createRunEndEncoded(b), [runEnds, values]);
  } else {
    const item = field(b, 'item', Type.FloatingPoint, f64);
    odd = field(b, 'spectrum', Type.ListView, ListView.createListView(b), [item]);
  }
  const fields = Schema.createFieldsVector(b, [time, odd]);
  Schema.startSchema(b);
  Schema.addFields(b, fields);
  const schema = Schema.endSchema(b);
  Message.startMessage(b);
  Message.addVersion(b, MetadataVersion.V5);
  Message.addHeaderType(b, MessageHeader.Schema);
  Message.addHeader(b, schema);
  Message.addBodyLength(b, BigInt(0));
  b.finish(Message.endMessage(b));
  const meta = b.asUint8Array();
  const padded = Math.ceil(meta.length / 8) * 8;
  const out = Buffer.alloc(8 + padded + 8);
  out.writeUInt32LE(0xffffffff, 0);
  out.writeInt32LE(padded, 4);
  Buffer.from(meta).copy(out, 8);
  out.writeUInt32LE(0xffffffff, 8 + padded);
  return out;
}
