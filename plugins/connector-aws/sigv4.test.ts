/**
 * AWS SigV4 test suite vectors (AWS General Reference, "Signature Version 4 test suite":
 * credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 2015-08-30T12:36:00Z,
 * us-east-1, service "service"), plus the IAM ListUsers example from the same documentation.
 */
import { describe, expect, test } from "bun:test";
import { parseAmzDate, parseAuthorization, signParts, signV4 } from "./sigv4.ts";

const creds = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const now = Date.UTC(2015, 7, 30, 12, 36, 0);
const base = "https://example.amazonaws.com";
const cases: { name: string; method: string; url: string; headers?: Record<string, string>; body?: string; signed: string; sig: string }[] = [
  { name: "get-vanilla", method: "GET", url: `${base}/`, signed: "host;x-amz-date", sig: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name: "post-vanilla", method: "POST", url: `${base}/`, signed: "host;x-amz-date", sig: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
  { name: "get-vanilla-query-order-key-case", method: "GET", url: `${base}/?Param2=value2&Param1=value1`, signed: "host;x-amz-date", sig: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
  { name: "get-unreserved", method: "GET", url: `${base}/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz`, signed: "host;x-amz-date", sig: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
  { name: "post-header-value-case", method: "POST", url: `${base}/`, headers: { "My-Header1": "VALUE1" }, signed: "host;my-header1;x-amz-date", sig: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
  { name: "get-header-value-trim", method: "GET", url: `${base}/`, headers: { "My-Header1": " value1", "My-Header2": '"a   b   c"' }, signed: "host;my-header1;my-header2;x-amz-date", sig: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
  { name: "post-x-www-form-urlencoded", method: "POST", url: `${base}/`, headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "Param1=value1", signed: "content-type;host;x-amz-date", sig: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
  { name: "post-x-www-form-urlencoded-parameters", method: "POST", url: `${base}/`, headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf8" }, body: "Param1=value1", signed: "content-type;host;x-amz-date", sig: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
];

describe("sigv4: AWS test suite", () => {
  for (const c of cases) {
    test(c.name, () => {
      const h = signV4({ method: c.method, url: c.url, headers: c.headers ?? {}, body: c.body ?? "", region: "us-east-1", service: "service", now }, creds);
      expect(h.authorization).toBe(`AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${c.signed}, Signature=${c.sig}`);
      expect(h["x-amz-date"]).toBe("20150830T123600Z");
    });
  }

  test("get-vanilla intermediate values (canonical request, string to sign)", () => {
    const p = signParts({ method: "GET", url: `${base}/`, region: "us-east-1", service: "service", now }, creds, { host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z" });
    expect(p.canonicalRequest).toBe("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(p.stringToSign).toBe("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  });

  test("IAM ListUsers example from the SigV4 documentation", () => {
    const h = signV4({
      method: "GET", url: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" }, region: "us-east-1", service: "iam", now,
    }, creds);
    expect(h.authorization).toBe("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  });

  test("parse helpers", () => {
    const h = signV4({ method: "GET", url: `${base}/`, region: "eu-west-1", service: "sts", now }, { ...creds, sessionToken: "tok" });
    expect(parseAuthorization(h.authorization)).toMatchObject({ accessKeyId: "AKIDEXAMPLE", region: "eu-west-1", service: "sts", signedHeaders: ["host", "x-amz-date", "x-amz-security-token"] });
    expect(parseAuthorization("Bearer x")).toBeUndefined();
    expect(parseAmzDate("20150830T123600Z")).toBe(now);
    expect(parseAmzDate("nope")).toBeNaN();
  });
});
