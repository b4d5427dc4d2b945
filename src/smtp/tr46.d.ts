/**
 * tr46.d.ts — type declarations for the `tr46` package (UTS #46 processing, the library
 * behind WHATWG URL hosts), which ships no types of its own. Only what idna.ts uses.
 */
declare module 'tr46' {
  namespace tr46 {
    interface Options {
      readonly checkBidi?: boolean;
      readonly checkHyphens?: boolean;
      readonly checkJoiners?: boolean;
      readonly ignoreInvalidPunycode?: boolean;
      readonly transitionalProcessing?: boolean;
      readonly useSTD3ASCIIRules?: boolean;
      readonly verifyDNSLength?: boolean;
    }
  }
  const tr46: {
    toASCII(domainName: string, options?: tr46.Options): string | null;
    toUnicode(domainName: string, options?: tr46.Options): { domain: string; error: boolean };
  };
  export = tr46;
}
