/**
 * The version of kube-gw and the commit it was built from. The build replaces
 * the commit; a run from source reports "source".
 *
 * @module
 */

/** The release version. */
export const VERSION = "0.1.0";

/** The git commit of the build. */
export const COMMIT: string = "source";
