<?php
/**
 * Template tags for themes and checkout plugins.
 *
 * @package KycBridge
 */

defined( 'ABSPATH' ) || exit;

if ( ! function_exists( 'kycb_is_verified' ) ) {
	/**
	 * Whether the bridge reports a user as verified; false when unsure (the bridge is down, the
	 * user is logged out, the token is wrong): the check fails closed.
	 *
	 * Example: kycb_is_verified( get_current_user_id(), array( 'type' => 'investor', 'level' => 'enhanced' ) ).
	 *
	 * @param int   $user_id User id.
	 * @param array $args    {status: default 'approved', type: a user type or '', level: 'basic'|'enhanced'|''}.
	 * @return bool
	 */
	function kycb_is_verified( $user_id, $args = array() ) {
		return \KycBridge\Kyc_Lookup::is_verified( (int) $user_id, is_array( $args ) ? $args : array() );
	}
}

if ( ! function_exists( 'kycb_is_pending_verification' ) ) {
	/**
	 * Whether a user registered with a role that needs a verification and is not verified yet
	 * (Settings → KYC Bridge → "Verify new users of these roles").
	 *
	 * @param int $user_id User id.
	 * @return bool
	 */
	function kycb_is_pending_verification( $user_id ) {
		return '' !== \KycBridge\Registration::pending( (int) $user_id );
	}
}
